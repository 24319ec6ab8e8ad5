"""arq workers: settings (composition root), context, enqueue helpers and thin jobs."""

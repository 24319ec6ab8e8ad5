"""``broker demo``: the story of the broker told through its own HTTP API (see story.py); the
processes it talks to are started and stopped by broker.supervisor.run_demo."""

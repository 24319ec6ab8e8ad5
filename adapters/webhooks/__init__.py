"""Outbound webhooks: Standard Webhooks signing, the SSRF guard, a pinned transport and one delivery attempt.

Pure building blocks: no database, no queue. The service layer stores attempts and schedules retries with
``next_delay``; the worker builds one client with ``make_client`` and calls ``deliver`` per attempt.
"""

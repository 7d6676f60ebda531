"""The `guardrail-ft` commands a tenant or an admin runs against the HTTP API: a thin httpx client, rich output.

Talks HTTP only, so it runs anywhere the API is reachable; it never imports torch or the workers' code."""

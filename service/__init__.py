"""The control plane: HTTP API, auth, policy, state and artifact stores. Never imports torch."""

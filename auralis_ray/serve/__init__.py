"""Ray Serve ingress: the Starlette app (WebSocket, HTTP API, player) and the per-replica fan-out."""

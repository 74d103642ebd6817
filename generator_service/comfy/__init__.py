"""Talking to ComfyUI: HTTP calls, the shared event socket, and reading its history."""

"""The generator service: runs ComfyUI workflows and streams their media back over gRPC."""

"""mediagen: gRPC services that turn a generation request into stored media.

``mediagen.v1`` holds the generated API, ``mediagen.scaffold`` the server
plumbing the three services share, ``mediagen.cli`` the command-line client.
"""

"""``mediagen``: the command-line client of the gateway.

Generate runs with live progress, look at runs, download media and list the
templates, all through the gateway's gRPC API. The token comes from
``MEDIAGEN_TOKEN`` only, so it never shows in shell history or process lists.
"""

"""Backends other than ComfyUI: remote generation APIs behind the generator's one event stream.

Each kind (``images_api``, ``predictions``) turns a resolved provider template into requests to
its provider and reports what happens as :mod:`base` run events; :mod:`job` turns those into the
same ``GenerateEvent`` stream, deadlines, cancellation and statuses as a ComfyUI job.
"""

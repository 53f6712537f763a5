"""Devices: cameras (faced.devices.camera), later speakers and displays.

Owner: each module names its own; hardware libraries are imported lazily inside them.
"""

"""A fleet over MQTT: the broker link, Home Assistant discovery and commands.

Owns nothing itself: faced.mqtt.link (the component), faced.mqtt.discovery (entities,
topics, discovery configs), faced.mqtt.commands (what a command does). Why a package: the
three are read and tested apart, and none of them grows past a page or two.
"""

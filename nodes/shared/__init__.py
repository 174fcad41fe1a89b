"""Pieces every Bazar service uses: errors, serving, outgoing calls, telemetry, admin."""

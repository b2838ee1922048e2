"""Health probes that talk to Jitsi and coturn the way a browser does."""

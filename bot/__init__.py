"""The running bot: settings, store, rendering, channels and the command line."""

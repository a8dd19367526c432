"""Audio inputs: WAV files (offline analysis and replay) and, on the appliance, the sound card."""

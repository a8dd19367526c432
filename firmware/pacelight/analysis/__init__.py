"""The streaming conversation-analysis pipeline (the same code runs on the appliance and in `analyze`)."""

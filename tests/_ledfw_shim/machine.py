# Test shim of MicroPython's `machine` for the unix port (the hardware seam only).
class Pin:
    OUT = 1
    IN = 0

    def __init__(self, pin, mode=OUT):
        self.pin = pin


def unique_id():
    return b"\xe6\x61\x40\x00\x00\x00\xbe\xef"

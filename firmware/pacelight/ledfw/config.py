# pacelight LED controller: board configuration (edit per installation, then `pacelight flash`).
from micropython import const

PIXEL_PIN = const(16)  # GPIO of the WS2812 data line (Pico: GP16; ESP32: change to your pin)
PIXEL_COUNT = const(1)
PIXEL_ORDER_GRB = True  # WS2812: green, red, blue byte order
BRIGHTNESS = const(96)  # 0..255: the agent's desk LED must be calm, never glaring

# Per cue: (r, g, b, pattern). Patterns: "solid", "breathe" (slow 4 s), "pulse" (1.5 s, still gentle).
CUES = {
    "overtalk": (255, 40, 0, "pulse"),
    "monologue": (255, 150, 0, "breathe"),
    "pace": (0, 90, 255, "breathe"),
    "energy": (150, 0, 255, "breathe"),  # detail "calm"
    "energy/more-energy": (0, 255, 80, "breathe"),
}

# Fail-safe "no signal": 3 s without a heartbeat → a dim, slow white breathe (or BRIGHTNESS 0 for off).
FAILSAFE_AFTER_MS = const(3000)
FAILSAFE_RGB = (255, 255, 255)
FAILSAFE_BRIGHTNESS = const(6)
FAILSAFE_PATTERN = "breathe"

FADE_MS = const(400)  # gentle cross-fade between states
FRAME_MS = const(20)  # animator frame period (50 Hz)

"""pacelight — on-device speech coaching for call-center agents.

The appliance runtime (audio capture, analysis pipeline, cue engine, MQTT publisher) lives in
this package; the host aggregator is ``pacelight_host`` and tone-model training is
``pacelight_train`` (the ``train`` extra, never imported at run time).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pacelight")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

PIPELINE_ID = f"pacelight {__version__}"

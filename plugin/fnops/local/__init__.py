"""The local loop: `fnops run` serves a function on this machine with the server its image
uses (env, overlays and variables for the run applied, replaced without a refused request when
the folder changes); `fnops invoke` finds it by name (state.py) and sends it a plain request
or a CloudEvent."""

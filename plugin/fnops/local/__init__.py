"""The local loop: `fnops run` serves a function on this machine with the server its image
uses (env and overlays applied, restarted when the folder changes); `fnops invoke` sends it
a plain request or a CloudEvent."""

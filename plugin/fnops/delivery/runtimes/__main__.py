"""`python -m fnops.delivery.runtimes`: fill the wheel cache with the function server's
locked wheels (e.g. in a runner image), so python builds need no package index."""

from .vendor import wheels

for path in wheels():
    print(path)

"""Long text in a manifest (an alert's PromQL, a dashboard's JSON)."""


class Block(str):
    """Text the YAML dump writes as a literal block (render.dump), one line per line: an
    Argo CD diff then shows the lines that changed, not one changed line of 20 KB."""

"""Render docs/tutorials/*.py (keras.io style) to Markdown next to them.

Top-level string blocks become prose (the first one, the header, becomes a
title and a description line); everything else becomes fenced Python code.

    python docs/render_tutorials.py          # write the .md files
    python docs/render_tutorials.py --check  # exit 1 if any .md is stale
"""

import ast
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def render(source):
    tree = ast.parse(source)
    lines = source.splitlines()
    parts, cursor = [], 0
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            code = "\n".join(lines[cursor:node.lineno - 1]).strip("\n")
            if code.strip():
                parts.append(("code", code))
            parts.append(("prose", node.value.value.strip("\n")))
            cursor = node.end_lineno
    code = "\n".join(lines[cursor:]).strip("\n")
    if code.strip():
        parts.append(("code", code))
    out = []
    kind, header = parts[0]
    if kind == "prose" and header.lstrip().startswith("Title:"):
        meta = dict(line.split(":", 1) for line in header.strip().splitlines() if ":" in line)
        out.append(f"# {meta['Title'].strip()}\n")
        out.append(f"**Author:** {meta.get('Author', '').strip()}<br>\n**Date created:** {meta.get('Date created', '').strip()}<br>\n"
                   f"**Description:** {meta.get('Description', '').strip()}\n")
        parts = parts[1:]
    for kind, text in parts:
        out.append(f"```python\n{text}\n```\n" if kind == "code" else text.strip() + "\n")
    return "\n".join(out)


def main(argv):
    stale = []
    for path in sorted(glob.glob(os.path.join(HERE, "tutorials", "*.py"))):
        md_path = path[:-3] + ".md"
        text = render(open(path).read())
        if "--check" in argv:
            if not os.path.exists(md_path) or open(md_path).read() != text:
                stale.append(md_path)
        else:
            with open(md_path, "w") as f:
                f.write(text)
    if stale:
        print("stale rendered tutorials (run python docs/render_tutorials.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

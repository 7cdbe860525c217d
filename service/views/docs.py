"""A self-contained API reference at /docs, rendered from the OpenAPI document (no CDN)."""

from __future__ import annotations

from flask import Flask, current_app, render_template_string

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ info.title }} API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2rem}
.op{border:1px solid #e3e3e3;border-radius:6px;padding:.6rem .9rem;margin:.7rem 0}
.m{display:inline-block;min-width:4.2rem;font-weight:bold}
.GET{color:#1e6fb8}.POST{color:#1e8449}.DELETE{color:#b03a2e}
code{background:#f4f4f4;padding:0 .2rem}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.85rem}
</style></head><body>
<h1>{{ info.title }} API {{ info.version }}</h1>
<p>{{ info.description }}</p>
<p>Every call but <code>/healthz</code> and <code>/readyz</code> needs
<code>Authorization: Bearer &lt;API key&gt;</code>. Errors share one envelope:
<code>{"error": {"code", "message", "fields"}}</code>. The machine-readable document is
<a href="/openapi.json">/openapi.json</a>.</p>
{% for tag, ops in groups %}<h2>{{ tag }}</h2>
{% for op in ops %}<div class="op"><span class="m {{ op.method }}">{{ op.method }}</span>
<code>{{ op.path }}</code> — {{ op.summary }}
{% if op.body %}<details><summary>request body</summary>
<pre>{{ op.body }}</pre></details>{% endif %}
<div>responses: {{ op.responses }}</div></div>{% endfor %}{% endfor %}
</body></html>"""


def install_docs(app: Flask) -> None:
    """Serve /docs: every operation with its summary, body schema and responses."""
    import json

    @app.get("/docs")
    def docs():
        spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
        groups: dict[str, list[dict]] = {}
        for path, item in spec.get("paths", {}).items():
            for method, op in item.items():
                if method not in ("get", "post", "delete", "put", "patch"):
                    continue
                tag = (op.get("tags") or ["other"])[0]
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
                schema = body.get("schema", {})
                ref = schema.get("$ref", "").rsplit("/", 1)[-1]
                shown = spec["components"]["schemas"].get(ref, schema) if ref else schema
                groups.setdefault(tag, []).append({
                    "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                    "body": json.dumps(shown, indent=2, ensure_ascii=False) if shown else "",
                    "responses": ", ".join(sorted(op.get("responses", {}))),
                })
        return render_template_string(_PAGE, info=spec["info"], groups=sorted(groups.items()))

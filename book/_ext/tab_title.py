"""A browser tab title that names the book once.

Sphinx titles every page "<page title> — <book title>". The landing page's
own title is the book's name, so its tab read the name twice. For a page
whose title is the book's name, drop the suffix; the sidebar keeps showing
the name (pydata-sphinx-theme takes it from `docstitle` unless the logo
has a text of its own, so give it one on that page).
"""
import html
import re


def strip_tags(text):
    return html.unescape(re.sub(r"<[^>]+>", "", text or "")).strip()


def name_the_book_once(app, pagename, templatename, context, doctree):
    docstitle = context.get("docstitle")
    if not docstitle or strip_tags(context.get("title")) != strip_tags(docstitle):
        return
    logo = dict(context.get("theme_logo") or {})
    logo.setdefault("text", docstitle)
    context["theme_logo"] = logo
    context["docstitle"] = ""


def setup(app):
    app.connect("html-page-context", name_the_book_once)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

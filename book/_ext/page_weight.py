"""Each page loads only what it shows: the widget renderer where a widget
shows, MathJax where there is maths.

Widget state. Executing a notebook stores the state of every widget it
ever created in its metadata (`metadata.widgets`), closed ones included:
the live training view of nnlib/live.py leaves 10 to 70 models per
chapter after it has closed its widgets and left a static figure. MyST-NB
embeds that state in the page and, on any page with state, loads the
widget renderer (require.js and embed-amd.js, 3.7 MB; `nb_ipywidgets_js`
in _config.yml). Before a notebook is parsed, keep only the models a
reader can see: those that a widget output of the notebook shows, what
they contain, and what links to them (a jslink between an explorer's
slider and its pictures). A notebook left with none loses its widget
metadata, and its page loads no renderer. The notebook files are not
changed.

MathJax. Sphinx loads MathJax on a page that has maths or whose toctree
includes a page that has maths (MathDomain.has_equations). The landing
page's toctree holds every chapter, so it loaded MathJax (1.2 MB) with
no maths of its own. Drop it from pages without maths of their own.
"""
import json
import re

from sphinx.util import logging

logger = logging.getLogger(__name__)

STATE_MIME = "application/vnd.jupyter.widget-state+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
# A model refers to another as "IPY_MODEL_<id>" in its state, or, for an
# Output widget showing a widget, as the "model_id" of a widget view.
MODEL_REF = re.compile(
    r'IPY_MODEL_([0-9a-f]{32})|"model_id": "([0-9a-f]{32})"')


def referred(model):
    """The ids a model's state refers to."""
    text = json.dumps(model.get("state", {}))
    return {a or b for a, b in MODEL_REF.findall(text)}


def shown_models(notebook):
    """The ids of the models the notebook's widget outputs show."""
    return {output["data"][VIEW_MIME]["model_id"]
            for cell in notebook.get("cells", [])
            for output in cell.get("outputs", [])
            if VIEW_MIME in output.get("data", {})}


def models_to_keep(state, shown):
    """The shown models, the models they refer to, and the models that
    refer to any kept one (links), until nothing changes."""
    refs = {model_id: referred(model) & state.keys()
            for model_id, model in state.items()}
    keep, todo = set(), [m for m in shown if m in state]
    while todo:
        while todo:
            model_id = todo.pop()
            if model_id not in keep:
                keep.add(model_id)
                todo += refs[model_id] - keep
        todo = [m for m in state if m not in keep and refs[m] & keep]
    return keep


def prune_widget_state(app, docname, source):
    """source-read: drop the widget models no output shows."""
    if not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return
    notebook = json.loads(source[0])
    widgets = notebook.get("metadata", {}).get("widgets", {})
    state = widgets.get(STATE_MIME, {}).get("state", {})
    if not state:
        return
    keep = models_to_keep(state, shown_models(notebook))
    if len(keep) == len(state):
        return
    if keep:
        widgets[STATE_MIME]["state"] = {m: state[m] for m in state
                                        if m in keep}
    else:
        del notebook["metadata"]["widgets"]
    logger.verbose(f"{docname}: kept {len(keep)} of {len(state)} "
                   "widget models")
    source[0] = json.dumps(notebook)


def drop_unused_mathjax(app, pagename, templatename, context, doctree):
    """html-page-context, after sphinx.ext.mathjax: no maths, no MathJax."""
    math = app.env.get_domain("math")
    if math.data["has_equations"].get(pagename, True):
        return

    def is_mathjax(script):
        return (str(script.filename or "").endswith(app.config.mathjax_path)
                or (script.attributes.get("body") or "").startswith(
                    "window.MathJax"))

    context["script_files"] = [script for script in context["script_files"]
                               if not is_mathjax(script)]


def setup(app):
    app.connect("source-read", prune_widget_state)
    # sphinx.ext.mathjax adds its scripts at the default priority, 500.
    app.connect("html-page-context", drop_unused_mathjax, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

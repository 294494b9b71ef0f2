"""Thebe off: nothing of sphinx-thebe in the pages.

Jupyter Book 1 loads the sphinx_thebe extension on every book, whatever
_config.yml says (jupyter_book/config.py lists it among its default
extensions); `launch_buttons: thebe: false`, the default, only hides the
launch button. The extension still writes its settings script into every
page, and with Sphinx 7.4 it writes it twice, so the second copy fails in
the browser ("Identifier 'THEBE_JS_URL' has already been declared"). It
also adds a stylesheet, a script, and a Binder configuration pointing at an
example repository.

This book runs no code in the browser (readers run the chapters with
`make lab`), so undo what sphinx_thebe's setup() registered: its event
handlers (which add the scripts, the Binder configuration and its static
folder) and its stylesheet. Its `thebe-button` directive stays registered
but is used nowhere. Listed after sphinx_thebe in the extensions, as every
local extension is.
"""
THEBE_MODULE = "sphinx_thebe"


def is_thebe(handler):
    return getattr(handler, "__module__", "").split(".")[0] == THEBE_MODULE


def setup(app):
    if THEBE_MODULE in app.extensions:
        for listeners in app.events.listeners.values():
            listeners[:] = [listener for listener in listeners
                            if not is_thebe(listener.handler)]
        app.registry.css_files[:] = [
            (name, attrs) for name, attrs in app.registry.css_files
            if not (name or "").startswith("sphinx-thebe")]
    return {"parallel_read_safe": True, "parallel_write_safe": True}

// Set-up for the widget renderer: loaded after require.js and before
// embed-amd.js on every page that shows widgets (nb_ipywidgets_js in
// _config.yml). Both of those come from _static/vendor/ (fetched by npm).

// 1. The renderer loads the fonts it ships (Font Awesome, for icons) from
//    next to its module path, so tell require.js where the module lives.
require.config({
  paths: {
    "@jupyter-widgets/html-manager/dist":
      document.documentElement.dataset.content_root +
      "_static/vendor/html-manager",
  },
});

// 2. The renderer typesets widget labels with MathJax 2's
//    MathJax.Hub.Queue; the book loads MathJax 3. Give MathJax 3 that one
//    call. The MathJax script is deferred, so it has replaced the
//    window.MathJax configuration by DOMContentLoaded, and widgets render
//    later, on load.
window.addEventListener("DOMContentLoaded", () => {
  const mathjax = window.MathJax;
  if (mathjax && mathjax.startup && !mathjax.Hub) {
    mathjax.Hub = {
      Queue: ([, , element]) =>
        mathjax.startup.promise.then(() => mathjax.typesetPromise([element])),
    };
  }
});

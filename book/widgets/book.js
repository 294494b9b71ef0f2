// Wide tables, display maths and HTML outputs scroll sideways inside their
// own box (book.css). Mark the edges of such a box that have more to show,
// "more-left" and "more-right", so that book.css can fade them: a reader
// then sees that the table goes on. Without this script (or with nothing
// hidden) the boxes look as before.
(() => {
  const SCROLLERS = [
    ".pst-scrollable-table-container",
    "div.math mjx-container[display='true']",
    ".cell_output .output.text_html",
    ".cell_output .output.text_markdown",
  ].join(", ");

  function mark(box) {
    const hidden = box.scrollWidth - box.clientWidth;
    box.classList.toggle("more-left", hidden > 1 && box.scrollLeft > 1);
    box.classList.toggle("more-right",
                         hidden > 1 && box.scrollLeft < hidden - 1);
  }

  const resized = new ResizeObserver(entries =>
    entries.forEach(entry => mark(entry.target)));

  function watch() {
    document.querySelectorAll(SCROLLERS).forEach(box => {
      if (!box.dataset.edgeCue) {
        box.dataset.edgeCue = "watched";
        box.addEventListener("scroll", () => mark(box), { passive: true });
        resized.observe(box);
      }
      mark(box);
    });
  }

  window.addEventListener("load", () => {
    watch();
    // MathJax and the widgets put their boxes in the page after "load".
    const mathjax = window.MathJax && window.MathJax.startup;
    if (mathjax && mathjax.promise) mathjax.promise.then(watch);
    setTimeout(watch, 3000);
  });
})();

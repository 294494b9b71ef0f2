// Replaces pydata-sphinx-theme's scripts/fontawesome.js (Sphinx copies
// html_static_path after the theme's static files, so this file wins).
// The theme's file is Font Awesome's whole SVG library, 1.5 MB loaded on
// every page; it only turns each <i class="fa-..."> icon into an inline
// SVG, and is needed for custom icons, which this book has none of. The
// theme's stylesheet already draws every icon from the Font Awesome
// webfonts it loads anyway, so the icons look the same without it.
// (pydata-sphinx-theme issue 2379 and pull request 2494.)

"""Server-side rendered dashboard: HTML pages (:mod:`.pages`) with small inline SVG charts
(:mod:`.charts`). No JavaScript framework and no CDN: everything is served by the aggregator."""

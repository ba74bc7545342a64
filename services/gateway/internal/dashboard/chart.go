package dashboard

import (
	"fmt"
	"html/template"
	"strings"
)

// chart is a throughput chart: per-minute counts over the last hour.
type chart struct {
	Title string
	// Unit names what is counted ("requests").
	Unit   string
	Counts []int
}

// Total is the sum of the counts.
func (c chart) Total() int {
	n := 0
	for _, v := range c.Counts {
		n += v
	}
	return n
}

// PerSecond is the average rate over the last five minutes.
func (c chart) PerSecond() string {
	n := 0
	for i := max(0, len(c.Counts)-5); i < len(c.Counts); i++ {
		n += c.Counts[i]
	}
	return fmt.Sprintf("%.2f/s", float64(n)/300)
}

// SVG draws the counts as a bar chart. It is inline SVG with presentation
// attributes only (no style attribute, no script), so the strict
// Content-Security-Policy allows it; every number in it is formatted here.
func (c chart) SVG() template.HTML {
	const w, h, pad = 600.0, 160.0, 26.0
	peak := 1
	for _, v := range c.Counts {
		peak = max(peak, v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s per minute over the last hour, peak %d">`,
		w, h+pad, template.HTMLEscapeString(c.Unit), peak)
	fmt.Fprintf(&b, `<line x1="0" y1="%g" x2="%g" y2="%g" class="axis"/>`, h, w, h)
	n := len(c.Counts)
	if n > 0 {
		bw := w / float64(n)
		for i, v := range c.Counts {
			if v == 0 {
				continue
			}
			bh := h * float64(v) / float64(peak)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="bar"><title>%d %s, %d min ago</title></rect>`,
				float64(i)*bw+1, h-bh, bw-2, bh, v, template.HTMLEscapeString(c.Unit), n-1-i)
		}
	}
	fmt.Fprintf(&b, `<text x="0" y="%g" class="tick">-60 min</text>`, h+pad-4)
	fmt.Fprintf(&b, `<text x="%g" y="%g" class="tick" text-anchor="end">now</text>`, w, h+pad-4)
	fmt.Fprintf(&b, `<text x="4" y="20" class="tick">peak %d/min</text>`, peak)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built above from numbers and escaped text
}

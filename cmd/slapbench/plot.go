package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// series is one line of a plot: an engine's run over N.
type series struct {
	label  string
	engine string
	run    string
	color  color.RGBA
	dashed bool
	shape  draw.GlyphDrawer
}

// The same colours on every plot: zc.buildout red, slapnode blue; no-op
// runs dashed.
var plotSeries = []series{
	{"zc.buildout (lean), first run", engBuildout, runFirst, color.RGBA{R: 200, G: 40, B: 40, A: 255}, false, draw.CircleGlyph{}},
	{"zc.buildout (lean), no-op re-run", engBuildout, runNoop, color.RGBA{R: 200, G: 40, B: 40, A: 255}, true, draw.BoxGlyph{}},
	{"slapnode, first apply (warm machine cache)", engSlapnode, runFirst, color.RGBA{R: 30, G: 90, B: 200, A: 255}, false, draw.CircleGlyph{}},
	{"slapnode, first apply just installed (empty machine cache)", engSlapnode, runFirstInstalled, color.RGBA{R: 30, G: 160, B: 120, A: 255}, false, draw.PyramidGlyph{}},
	{"slapnode, no-op --recheck", engSlapnode, runRecheck, color.RGBA{R: 30, G: 90, B: 200, A: 255}, true, draw.BoxGlyph{}},
	{"slapnode, no-op (complete release)", engSlapnode, runComplete, color.RGBA{R: 90, G: 170, B: 220, A: 255}, true, draw.TriangleGlyph{}},
	{"filesystem floor (same mkdir/writes from Go, no engine)", engFloor, runFloor, color.RGBA{R: 120, G: 120, B: 120, A: 255}, true, draw.CrossGlyph{}},
}

// errPoints gives plotter.NewYErrorBars the points and their min–max.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// plotFile is a generated plot, for the page.
type plotFile struct {
	Name, Alt string
}

func drawPlots(dir string, r *results) ([]plotFile, error) {
	sb := r.SideBySide
	if sb == nil {
		return nil, nil
	}
	kinds := []struct {
		file, title, ylabel string
		logY                bool
		value               func(stats) float64
		errBars             bool // min–max of the runs
	}{
		{"apply-wall.png", "Wall time vs number of parts (median; bars: min–max of the runs)", "wall time (s)", true, func(s stats) float64 { return s.Wall }, true},
		{"apply-cpu.png", "CPU time (user+sys) vs number of parts (median)", "CPU time (s)", true, func(s stats) float64 { return s.CPU }, false},
		{"apply-rss.png", "Peak resident memory vs number of parts (max over runs)", "peak RSS (MiB)", false, func(s stats) float64 { return s.RSS }, false},
	}
	var out []plotFile
	for _, k := range kinds {
		p := plot.New()
		p.Title.Text = k.title
		p.X.Label.Text = "parts in the profile (N)"
		p.Y.Label.Text = k.ylabel
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		if k.logY {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		} else {
			p.Y.Min = 0
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		p.Legend.Left = true
		maxY := 0.0
		for _, s := range plotSeries {
			var xys plotter.XYs
			var errs plotter.YErrors
			for _, n := range sb.Sizes {
				st, ok := summarize(sb.Samples, s.engine, s.run, n)
				if !ok || k.value(st) <= 0 || (s.engine == engFloor && k.file != "apply-wall.png") {
					continue
				}
				xys = append(xys, plotter.XY{X: float64(n), Y: k.value(st)})
				errs = append(errs, struct{ Low, High float64 }{st.Wall - st.WallLo, st.WallHi - st.Wall})
				maxY = max(maxY, k.value(st))
				if k.errBars {
					maxY = max(maxY, st.WallHi)
				}
			}
			if len(xys) == 0 {
				continue
			}
			l, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return nil, err
			}
			l.Color, pts.Color = s.color, s.color
			l.Width = vg.Points(1.5)
			if s.dashed {
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			}
			pts.Shape = s.shape
			pts.Radius = vg.Points(3)
			p.Add(l, pts)
			if k.errBars && len(xys) > 1 {
				eb, err := plotter.NewYErrorBars(errPoints{xys, errs})
				if err != nil {
					return nil, err
				}
				eb.Color = s.color
				p.Add(eb)
			}
			p.Legend.Add(s.label, l, pts)
		}
		// Head room above the data for the legend (top left).
		if k.logY {
			p.Y.Max = maxY * 20
		} else {
			p.Y.Max = maxY * 1.6
		}
		if err := p.Save(8*vg.Inch, 5*vg.Inch, filepath.Join(dir, k.file)); err != nil {
			return nil, fmt.Errorf("plot %s: %w", k.file, err)
		}
		out = append(out, plotFile{Name: k.file, Alt: k.title})
	}
	return out, nil
}

package web

import (
	"embed"
	"net/http"
	"path"
	"strconv"

	"codeberg.org/go-fonts/dejavu/dejavusans"
	"codeberg.org/go-fonts/dejavu/dejavusansmono"
)

// static holds the front end: index.html, app.js, style.css (written for this
// package; no third-party code).
//
//go:embed static
var static embed.FS

// fonts are the DejaVu faces the page uses (Bitstream Vera licence, shipped with
// the Go module codeberg.org/go-fonts/dejavu), so it renders the same everywhere.
var fonts = map[string][]byte{
	"dejavu-sans.ttf":      dejavusans.TTF,
	"dejavu-sans-mono.ttf": dejavusansmono.TTF,
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".ttf":  "font/ttf",
	".txt":  "text/plain; charset=utf-8",
}

// serveAsset answers an embedded file by name (no folders: the name is one path
// segment already checked by splitPath).
func serveAsset(w http.ResponseWriter, r *http.Request, name string) error {
	b, ok := fonts[name]
	if !ok {
		var err error
		b, err = static.ReadFile("static/" + name)
		if err != nil {
			return notFound("no such file %q", name)
		}
	}
	ct := contentTypes[path.Ext(name)]
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if name == "index.html" {
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	if r.Method != http.MethodHead {
		w.Write(b)
	}
	return nil
}

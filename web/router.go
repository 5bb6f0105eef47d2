package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attnscope/attnscope/store"
)

// Limits on requests.
const (
	maxURL      = 2048 // bytes of the request URI
	maxSegments = 12
)

// csp forbids every fetch outside the server itself: scripts, styles, fonts,
// images and XHR come from 'self' only (images also from data: and blob: URLs the
// page makes itself); no frames, forms or plugins.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// httpError is an error answered with its status code and message.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

func tooLarge(format string, a ...any) error {
	return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf(format, a...)}
}

// ServeHTTP routes a request. Only GET and HEAD are answered; paths are split on
// '/' before unescaping, and a segment that is empty, "." or "..", or holds a
// slash, backslash or control character (escaped or not) is refused.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	err := s.checkHost(r)
	if err == nil {
		err = s.route(w, r)
	}
	if err == nil {
		return
	}
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, store.ErrNotCaptured), errors.Is(err, fs.ErrNotExist):
		he = &httpError{http.StatusNotFound, err.Error()}
	default:
		he = &httpError{http.StatusInternalServerError, err.Error()}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(he.code)
	json.NewEncoder(w).Encode(map[string]string{"error": he.msg})
}

// checkHost refuses a Host header naming neither an IP address, localhost nor one
// of Options.Hosts (DNS rebinding).
func (s *Server) checkHost(r *http.Request) error {
	if s.opts.AnyHost {
		return nil
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" || net.ParseIP(host) != nil || slices.Contains(s.opts.Hosts, host) {
		return nil
	}
	return &httpError{http.StatusMisdirectedRequest, fmt.Sprintf("Host %q not served: open the page through the address the server printed", r.Host)}
}

// splitPath returns the unescaped segments of the request path.
func splitPath(r *http.Request) ([]string, error) {
	if len(r.RequestURI) > maxURL {
		return nil, &httpError{http.StatusRequestURITooLong, fmt.Sprintf("request URI of %d bytes; at most %d accepted", len(r.RequestURI), maxURL)}
	}
	raw := r.URL.EscapedPath()
	if !strings.HasPrefix(raw, "/") {
		return nil, badRequest("path %q: an absolute path expected", raw)
	}
	if raw == "/" {
		return nil, nil
	}
	parts := strings.Split(raw[1:], "/")
	if len(parts) > maxSegments {
		return nil, badRequest("path has %d segments; at most %d accepted", len(parts), maxSegments)
	}
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, badRequest("path segment %q: invalid escape", p)
		}
		if u == "" || u == "." || u == ".." || strings.ContainsAny(u, "/\\") || strings.ContainsFunc(u, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return nil, badRequest("path segment %q refused: empty, '.', '..', slashes and control characters are not allowed", p)
		}
		parts[i] = u
	}
	return parts, nil
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return &httpError{http.StatusMethodNotAllowed, "method " + r.Method + " not allowed: the server is read-only (GET, HEAD)"}
	}
	if r.ContentLength != 0 {
		return badRequest("request has a body; none accepted")
	}
	parts, err := splitPath(r)
	if err != nil {
		return err
	}
	if len(r.URL.RawQuery) > 512 {
		return badRequest("query string of %d bytes; at most 512 accepted", len(r.URL.RawQuery))
	}
	if len(parts) == 0 || (len(parts) == 1 && parts[0] == "index.html") {
		return serveAsset(w, r, "index.html")
	}
	switch parts[0] {
	case "static":
		if len(parts) != 2 {
			return notFound("no such file")
		}
		return serveAsset(w, r, parts[1])
	case "api":
		return s.routeAPI(w, r, parts[1:])
	}
	return notFound("no such page %q", r.URL.Path)
}

// routeAPI answers /api/...:
//
//	runs                                   the runs with their samples
//	runs/R/metrics                         the metrics table
//	runs/R/derived/PASS/S[?layer=&head=&reduce=]  one derived output, drawn by its declared axes
//	runs/R/run-outputs/NAME[?layer=&head=&reduce=]  one run-level output, drawn by its declared axes
//	runs/R/samples/S                       the sample's record and shape
//	runs/R/samples/S/layer/L               all heads of layer L (binary float32 [H, N, N]; N ≤ 512)
//	runs/R/samples/S/pyramid/L/H           pyramid geometry and percentiles
//	runs/R/samples/S/tile/L/H/POOL/Z/Y/X   one tile (binary float32)
//	runs/R/samples/S/dpyramid/PASS/I       pyramid of matrix I of a derived [..., N, N] output
//	runs/R/samples/S/dtile/PASS/I/POOL/Z/Y/X  one of its tiles
//	runs/R/samples/S/thumbs/L/POOL         the top level of every head of layer L (binary)
//	runs/R/samples/S/neuron/L/H/Q          Q/K of one query
//	runs/R/samples/S/code/L                attention over the source text
func (s *Server) routeAPI(w http.ResponseWriter, r *http.Request, p []string) error {
	if len(p) == 1 && p[0] == "runs" {
		return s.apiRuns(w)
	}
	if len(p) < 3 || p[0] != "runs" {
		return notFound("no API endpoint %q", r.URL.Path)
	}
	e := s.byKey[p[1]]
	if e == nil {
		return notFound("no run %q is served", p[1])
	}
	switch {
	case len(p) == 3 && p[2] == "metrics":
		return s.apiMetrics(w, e)
	case len(p) == 5 && p[2] == "derived":
		return s.apiDerived(w, r, e, p[3], p[4])
	case len(p) == 4 && p[2] == "run-outputs":
		return s.apiRunOutput(w, r, e, p[3])
	case len(p) >= 4 && p[2] == "samples":
	default:
		return notFound("no API endpoint %q", r.URL.Path)
	}
	sd, err := s.sample(e, p[3])
	if err != nil {
		return err
	}
	if len(p) == 4 {
		return s.apiSample(w, sd)
	}
	args := p[5:]
	switch p[4] {
	case "layer":
		l, err := ints(args, "layer")
		if err != nil {
			return err
		}
		return s.apiLayer(w, r, sd, l[0])
	case "pyramid":
		v, err := ints(args, "layer", "head")
		if err != nil {
			return err
		}
		return s.apiPyramid(w, sd, v[0], v[1])
	case "tile":
		if len(args) != 6 {
			return badRequest("tile: /tile/LAYER/HEAD/POOL/Z/Y/X expected")
		}
		pool, ok := parsePool(args[2])
		if !ok {
			return badRequest("tile: pool %q: max or mean expected", args[2])
		}
		v, err := ints(append(args[:2:2], args[3:]...), "layer", "head", "z", "y", "x")
		if err != nil {
			return err
		}
		return s.apiTile(w, r, sd, v[0], v[1], pool, v[2], v[3], v[4])
	case "dpyramid":
		if len(args) != 2 {
			return badRequest("dpyramid: /dpyramid/PASS/INDEX expected")
		}
		v, err := ints(args[1:], "index")
		if err != nil {
			return err
		}
		return s.apiDerivedPyramid(w, r, sd, args[0], v[0])
	case "dtile":
		if len(args) != 6 {
			return badRequest("dtile: /dtile/PASS/INDEX/POOL/Z/Y/X expected")
		}
		pool, ok := parsePool(args[2])
		if !ok {
			return badRequest("dtile: pool %q: max or mean expected", args[2])
		}
		v, err := ints(append([]string{args[1]}, args[3:]...), "index", "z", "y", "x")
		if err != nil {
			return err
		}
		return s.apiDerivedTile(w, r, sd, args[0], v[0], pool, v[1], v[2], v[3])
	case "thumbs":
		if len(args) != 2 {
			return badRequest("thumbs: /thumbs/LAYER/POOL expected")
		}
		pool, ok := parsePool(args[1])
		if !ok {
			return badRequest("thumbs: pool %q: max or mean expected", args[1])
		}
		l, err := ints(args[:1], "layer")
		if err != nil {
			return err
		}
		return s.apiThumbs(w, r, sd, l[0], pool)
	case "neuron":
		v, err := ints(args, "layer", "head", "query")
		if err != nil {
			return err
		}
		return s.apiNeuron(w, sd, v[0], v[1], v[2])
	case "code":
		l, err := ints(args, "layer")
		if err != nil {
			return err
		}
		return s.apiCode(w, r, sd, l[0])
	}
	return notFound("no API endpoint %q", r.URL.Path)
}

// ints parses the segments as non-negative decimal integers named by names.
func ints(seg []string, names ...string) ([]int, error) {
	if len(seg) != len(names) {
		return nil, badRequest("%d path segments (%s) expected, got %d", len(names), strings.Join(names, ", "), len(seg))
	}
	out := make([]int, len(seg))
	for i, sg := range seg {
		if len(sg) > 9 {
			return nil, badRequest("%s %q: a non-negative integer below 10^9 expected", names[i], sg)
		}
		v, err := strconv.Atoi(sg)
		if err != nil || v < 0 || sg[0] == '+' || (len(sg) > 1 && sg[0] == '0') {
			return nil, badRequest("%s %q: a non-negative integer expected", names[i], sg)
		}
		out[i] = v
	}
	return out, nil
}

// acquire takes a computation slot, waiting at most 10 s.
func (s *Server) acquire(r *http.Request) (func(), error) {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-t.C:
		return nil, &httpError{http.StatusServiceUnavailable, "server busy: too many tile requests at once; retry"}
	case <-r.Context().Done():
		return nil, &httpError{499, "request cancelled"}
	}
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(b)
	return nil
}

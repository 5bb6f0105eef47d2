package web

import (
	"fmt"
	"net/http"

	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/store"
)

// runOutputs lists the run-level outputs of run e (store.Run.RunOutputs) whose
// folder and files lie inside the run folder, with their shapes.
func runOutputs(e *runEntry) ([]derivedPass, error) {
	outs, err := e.run.RunOutputs()
	if err != nil {
		return nil, &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s: %v", e.key, err)}
	}
	list := []derivedPass{}
	for _, o := range outs {
		if insideRunOutput(e, o.Name) != nil {
			continue
		}
		list = append(list, derivedPass{Name: o.Name, Function: o.Function, Axes: o.Axes, Shape: o.Shape})
	}
	return list, nil
}

// insideRunOutput checks that a run-level output's folder and files lie inside the
// run folder (no symbolic link leads out).
func insideRunOutput(e *runEntry, name string) error {
	for _, rel := range [][]string{{store.RunOutputDir, name}, {store.RunOutputDir, name, store.PassFile}, {store.RunOutputDir, name, "output.npy"}} {
		if _, err := e.inside(rel...); err != nil {
			return err
		}
	}
	return nil
}

// apiRunOutput answers runs/R/run-outputs/NAME[?layer=&head=&reduce=]: a run-level
// output drawn by its declared axes (report.NewRunOutputView, as the report draws it).
func (s *Server) apiRunOutput(w http.ResponseWriter, r *http.Request, e *runEntry, name string) error {
	if err := store.CheckSampleID(name); err != nil {
		return badRequest("run output %q: not an output name", name)
	}
	sel, err := derivedSelection(r.URL.Query())
	if err != nil {
		return err
	}
	outs, err := runOutputs(e)
	if err != nil {
		return err
	}
	var names []string
	for _, o := range outs {
		names = append(names, o.Name)
		if o.Name != name {
			continue
		}
		cells := 1
		for _, d := range o.Shape {
			cells *= d
		}
		if cells > maxDerivedCells {
			return tooLarge("run output %s has %d values; at most %d are sent", name, cells, maxDerivedCells)
		}
		info := store.RunOutputInfo{Name: o.Name, PassSettings: store.PassSettings{Function: o.Function, Axes: o.Axes}, Shape: o.Shape}
		v, err := report.NewRunOutputView(info, e.run, sel)
		if err != nil {
			return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s: run output %s: %v", e.key, name, err)}
		}
		return writeJSON(w, newDerivedJSON(name, o.Function, "", o.Shape, o.Axes, v))
	}
	return notFound("run %s has no run output %q (run outputs: %s)", e.key, name, cmpOrNone(names))
}

func cmpOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	out := names[0]
	for _, n := range names[1:] {
		out += ", " + n
	}
	return out
}

// Package repocheck holds tests of the repository itself rather than of a Go package:
// that every shell command of the README runs as written from a fresh clone
// (readme_test.go), and that the CI script is robust (ci_test.go). It has no code.
package repocheck

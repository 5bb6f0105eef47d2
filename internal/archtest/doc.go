// Package archtest holds tests of the repository's shape: the import graph follows
// the data flow, and the command line stays a thin shell over the packages.
package archtest

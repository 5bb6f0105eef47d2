package compare

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"

	"github.com/attnscope/attnscope/checkpoint"
)

// loadNpy reads a .npy file as an Array; nil without error when it does not exist.
// Little-endian float64 data (what derive writes) is read in one piece into an
// exactly sized slice; other dtypes go through checkpoint.ReadNpyFile.
func loadNpy(path string) (*Array, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	h, err := checkpoint.ReadNpyHeader(br)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if h.FortranOrder {
		return nil, fmt.Errorf("read %s: Fortran-ordered arrays are not read (save with C order)", path)
	}
	if h.DType != checkpoint.NpyFloat64 || h.BigEndian {
		a, err := checkpoint.ReadNpyFile(path)
		if err != nil {
			return nil, err
		}
		return &Array{Shape: a.Shape, Data: a.Float64s()}, nil
	}
	n := h.NumElements()
	if want := h.DataOffset + int64(n)*8; st.Size() != want {
		return nil, fmt.Errorf("read %s: %d bytes, the header's shape %v of float64 needs %d", path, st.Size(), h.Shape, want)
	}
	buf := make([]byte, n*8)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = math.Float64frombits(binary.LittleEndian.Uint64(buf[8*i:]))
	}
	return &Array{Shape: append([]int{}, h.Shape...), Data: data}, nil
}

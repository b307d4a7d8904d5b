package cluster

// File is one file of the desired-state repository.
type File struct {
	// Path is relative to the repository root, with forward slashes; it is
	// what error messages print.
	Path string
	Data []byte
}

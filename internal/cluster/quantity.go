package cluster

import (
	"k8s.io/apimachinery/pkg/api/resource"
)

// Quantity is a Kubernetes resource quantity ("10Gi", "500m") kept as
// written, so plans show the user's own spelling.
type Quantity string

// Parse returns the quantity's value; decoding has already rejected
// malformed quantities, so an error here means a Quantity built by hand.
func (q Quantity) Parse() (resource.Quantity, error) {
	return resource.ParseQuantity(string(q))
}

// Cmp compares two quantities by value: -1, 0 or 1. Unparsable quantities
// compare as their strings.
func (q Quantity) Cmp(other Quantity) int {
	a, errA := q.Parse()
	b, errB := other.Parse()
	if errA != nil || errB != nil {
		switch {
		case q < other:
			return -1
		case q > other:
			return 1
		}
		return 0
	}
	return a.Cmp(b)
}

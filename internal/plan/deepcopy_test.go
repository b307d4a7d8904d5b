package plan

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// deepCopy returns a copy of v that shares no memory with it: every
// pointer, slice and map is copied, so that comparing the copy with v after
// Make sees a change made through any of them. It is written by reflection
// rather than by hand so that a field added to the model later is copied
// too; an unexported field (which reflection cannot set) fails the test
// instead of being shared silently.
func deepCopy[T any](t *testing.T, v T) T {
	t.Helper()
	var c T
	if err := copyValue(reflect.ValueOf(&c).Elem(), reflect.ValueOf(v)); err != nil {
		t.Fatalf("deep copy of %T: %v", v, err)
	}
	return c
}

// copyValue sets dst, a settable value of src's type, to a deep copy of src.
func copyValue(dst, src reflect.Value) error {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return nil
		}
		dst.Set(reflect.New(src.Type().Elem()))
		return copyValue(dst.Elem(), src.Elem())
	case reflect.Struct:
		for i := range src.NumField() {
			if f := src.Type().Field(i); !f.IsExported() {
				return fmt.Errorf("%s.%s is unexported", src.Type(), f.Name)
			}
			if err := copyValue(dst.Field(i), src.Field(i)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			return nil
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			if err := copyValue(dst.Index(i), src.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Array:
		for i := range src.Len() {
			if err := copyValue(dst.Index(i), src.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if src.IsNil() {
			return nil
		}
		dst.Set(reflect.MakeMapWithSize(src.Type(), src.Len()))
		for it := src.MapRange(); it.Next(); {
			k := reflect.New(src.Type().Key()).Elem()
			if err := copyValue(k, it.Key()); err != nil {
				return err
			}
			e := reflect.New(src.Type().Elem()).Elem()
			if err := copyValue(e, it.Value()); err != nil {
				return err
			}
			dst.SetMapIndex(k, e)
		}
	case reflect.Interface:
		if src.IsNil() {
			return nil
		}
		e := reflect.New(src.Elem().Type()).Elem()
		if err := copyValue(e, src.Elem()); err != nil {
			return err
		}
		dst.Set(e)
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return fmt.Errorf("a %s cannot be copied", src.Type())
	default:
		dst.Set(src)
	}
	return nil
}

// The purity check of TestConvergence is only as good as the copy it
// compares with, so the copy is tested to be equal and to share nothing.
func TestDeepCopySharesNothing(t *testing.T) {
	desired := mustLoad(t, website("quay.io/enterprisedb/postgresql:13.2", 3,
		"  postgresql:\n    parameters:\n      work_mem: 4MB\n"))
	observed := Converged(desired)
	dc, oc := deepCopy(t, desired), deepCopy(t, observed)
	if diff := cmp.Diff(desired, dc); diff != "" {
		t.Fatalf("the copy of the desired clusters differs (-original +copy):\n%s", diff)
	}
	if diff := cmp.Diff(observed, oc); diff != "" {
		t.Fatalf("the copy of the observed state differs (-original +copy):\n%s", diff)
	}
	desired[0].Spec.PostgreSQL.Parameters["work_mem"] = "64MB"
	observed.Clusters[0].Instances[0].Ready = false
	observed.Clusters[0].Spec.Spec.Instances = 7
	for _, diff := range []string{cmp.Diff(desired, dc), cmp.Diff(observed, oc)} {
		if diff == "" {
			t.Fatal("a change to the original does not show against the copy")
		}
	}
	if dc[0].Spec.PostgreSQL.Parameters["work_mem"] != "4MB" || !oc.Clusters[0].Instances[0].Ready || oc.Clusters[0].Spec.Spec.Instances != 3 {
		t.Fatal("a change to the original reached the copy")
	}
}

package kafka

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// errorResponse builds the answer to a request this broker does not serve
// (or could not decode), in the shape the client expects for its key and
// version, with code wherever the answer has an ErrorCode: at the top,
// and in one entry per entry of the request's lists (topics, partitions,
// groups, resources ...), carrying the names and ids the request gave. A
// client thus reads, per thing it asked about, why nothing was done.
func errorResponse(h reqHeader, req kmsg.Request, code int16) kmsg.Response {
	resp := kmsg.ResponseForKey(h.key)
	if resp == nil {
		return nil
	}
	resp.SetVersion(h.version)
	var src reflect.Value
	if req != nil {
		src = reflect.ValueOf(req).Elem()
	}
	mirror(reflect.ValueOf(resp).Elem(), src, code, 0)
	return resp
}

var int16Type = reflect.TypeFor[int16]()

// mirror fills dst (a response struct) from src (the matching request
// struct, or invalid): ErrorCode fields get code; a list of structs gets
// one entry per entry of the request's list of the same name; a field
// named and typed as one of the request's is copied.
func mirror(dst, src reflect.Value, code int16, depth int) {
	if depth > 8 {
		return
	}
	t := dst.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Name == "Version" {
			continue
		}
		d := dst.Field(i)
		if f.Name == "ErrorCode" && f.Type == int16Type {
			d.SetInt(int64(code))
			continue
		}
		if !src.IsValid() {
			continue
		}
		s := src.FieldByName(f.Name)
		if !s.IsValid() {
			continue
		}
		switch {
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct && s.Kind() == reflect.Slice:
			n := s.Len()
			out := reflect.MakeSlice(f.Type, n, n)
			for j := range n {
				e := out.Index(j)
				if def := e.Addr().MethodByName("Default"); def.IsValid() {
					def.Call(nil)
				}
				se := s.Index(j)
				if se.Kind() == reflect.Struct {
					mirror(e, se, code, depth+1)
				} else {
					mirror(e, reflect.Value{}, code, depth+1)
					setFirst(e, se)
				}
			}
			d.Set(out)
		case s.Type() == f.Type && f.Type.Kind() != reflect.Slice && f.Type.Kind() != reflect.Struct:
			d.Set(s)
		}
	}
}

// setFirst sets the first field of struct e whose type is v's (a request
// list of names or partition numbers answered by a list of structs).
func setFirst(e, v reflect.Value) {
	for i := range e.NumField() {
		if e.Type().Field(i).IsExported() && e.Field(i).Type() == v.Type() && e.Type().Field(i).Name != "Version" {
			e.Field(i).Set(v)
			return
		}
	}
}

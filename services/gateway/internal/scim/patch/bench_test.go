package patch

import "testing"

func BenchmarkApply(b *testing.B) {
	res := fuzzResource(b)
	o := ops(b, `[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"c@x"},
		{"op":"replace","value":{"displayName":"Bjfe","name.givenName":"Kkom","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}]`)
	s := UserSchema()
	for b.Loop() {
		if _, err := Apply(res, o, s); err != nil {
			b.Fatal(err)
		}
	}
}

package filter

import "testing"

func BenchmarkParse(b *testing.B) {
	const f = `userType eq "Employee" and emails[type eq "work" and value co "@example.com"] or not (meta.created gt "2011-05-13T04:42:34Z")`
	for b.Loop() {
		if _, err := Parse(f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	r := loadJSON(b, "okta_user.json")
	e, err := Parse(`emails[type eq "work" and value co "@okta.local"] and meta.created gt "2011-05-13T04:42:34Z"`)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !Match(e, r) {
			b.Fatal("no match")
		}
	}
}

module github.com/dromos-dev/dromos

go 1.26.8

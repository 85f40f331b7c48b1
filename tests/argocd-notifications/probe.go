package main

import (
	_ "github.com/argoproj/argo-cd/v3/util/notification/expression/strings"
	_ "github.com/argoproj/argo-cd/v3/util/notification/expression/time"
	_ "github.com/argoproj/notifications-engine/pkg/api"
	_ "github.com/argoproj/notifications-engine/pkg/controller"
	_ "k8s.io/client-go/dynamic/fake"
)

func main() {}

module github.com/keptn-gitops-service/test/env/peers/keptn

go 1.26

require github.com/keptn/keptn/distributor v0.0.0-20231221114525-318a3d5416a6

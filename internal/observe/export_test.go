package observe

// ListInPages and ListPage are the watch's paged first List, for the
// API-tier tests (package observe_test).
var ListInPages = listInPages

const ListPage = listPage

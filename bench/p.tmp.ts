import { voteHttp } from "./vote-http.bench";
voteHttp(300, 10).then((r) => { console.log(JSON.stringify(r)); process.exit(0); });

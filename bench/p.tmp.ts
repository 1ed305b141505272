import { voteHttp } from "./vote-http.bench";
voteHttp(200).then((r) => { console.log(JSON.stringify(r)); process.exit(0); });

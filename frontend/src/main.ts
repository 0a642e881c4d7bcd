// The studio's script: the project studio on /studio/<id>/, the recorded demo on /studio/demo/.
import "./studio.css";
import { startDemo } from "./demo";
import { startProject } from "./project";

const project = document.getElementById("project-studio");
const demo = document.getElementById("studio");
if (project) startProject(project);
else if (demo) startDemo(demo);

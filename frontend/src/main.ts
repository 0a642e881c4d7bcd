// The studio's script: the project studio on /studio/<id>/ (with a student's lesson panel above
// it), the recorded demo on /studio/demo/.
import "./studio.css";
import { startDemo } from "./demo";
import { startProject } from "./project";
import { followLessonPanel } from "./lessonpanel";

const project = document.getElementById("project-studio");
const demo = document.getElementById("studio");
const lesson = document.getElementById("lesson-panel");
if (lesson) followLessonPanel(lesson);
if (project) startProject(project);
else if (demo) startDemo(demo);
